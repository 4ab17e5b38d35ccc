// The same parameter of @F with and without the nonnegativity of its @monotone contract:
// @F was proved monotone and ran with a negative weight (the declarations agreed on type and init).
// RUN: ( geomc %s --target=torch; test $? -eq 1 ) 2>&1 | filecheck %s

builtin.module {
  func.func @G(%x: !geo.point<euclidean, 4, f32>) -> !geo.point<euclidean, 1, f32> {
    %w = geo.param "F.w" init "glorot_uniform" : tensor<1x4xf32>
    %0 = geo.linear %x, %w : !geo.point<euclidean, 4, f32>, tensor<1x4xf32> -> !geo.point<euclidean, 1, f32>
    func.return %0 : !geo.point<euclidean, 1, f32>
  }
  func.func @F(%x: !geo.point<euclidean, 4, f32>) -> !geo.point<euclidean, 1, f32> attributes {contracts = [#contract.monotone<[0], increasing>]} {
    %w = geo.param "F.w" init "glorot_uniform" {weight_transforms = ["constrain:nonnegative"]} : tensor<1x4xf32>
    %0 = geo.linear %x, %w : !geo.point<euclidean, 4, f32>, tensor<1x4xf32> -> !geo.point<euclidean, 1, f32>
    func.return %0 : !geo.point<euclidean, 1, f32>
  }
}

// CHECK: params-conflict-transforms.mlir:12:5: error: {{.*}}: invalid IR: geo.param: parameter 'F.w' is declared twice with different meanings: tensor<1x4xf32> init 'glorot_uniform' without weight_transforms and tensor<1x4xf32> init 'glorot_uniform' weight_transforms ['constrain:nonnegative']
