// geo.linear: the weight's column count must equal the input dimension.
// RUN: ( geomc %s --passes=; test $? -eq 1 ) 2>&1 | filecheck %s

// CHECK: error: {{.*}}invalid-linear-dim.mlir: invalid IR: geo.linear: weight tensor<2x3xf32> expects input dimension 3, found !geo.point<euclidean, 4, f32>
// CHECK-NOT: Traceback

func.func @f(%x: !geo.point<euclidean, 4, f32>) -> !geo.point<euclidean, 2, f32> {
  %w = geo.param "f.linear0.weight" init "glorot_uniform" : tensor<2x3xf32>
  %0 = geo.linear %x, %w : !geo.point<euclidean, 4, f32>, tensor<2x3xf32> -> !geo.point<euclidean, 2, f32>
  func.return %0 : !geo.point<euclidean, 2, f32>
}
