// jet.stencil_sum needs a jet computed from jet.stencil_seed (its directions are a leading
// batch axis); on a jet.seed jet the generated module failed an assertion at run time.
// RUN: ( geomc %s --passes=; test $? -eq 1 ) 2>&1 | filecheck %s

// CHECK: error: {{.*}}invalid-jet-stencil-source.mlir: invalid IR: jet.stencil_sum: its jet must be computed from a jet.stencil_seed stencil "biharmonic" (the stencil's directions are a leading batch axis), found jet.seed
// CHECK-NOT: Traceback

func.func @f(%x: !geo.point<euclidean, 2, f32>, %v: !geo.tangent<euclidean, 2, f32>) -> !geo.point<euclidean, 2, f32> {
  %j = jet.seed %x, %v order 4 : !geo.point<euclidean, 2, f32>, !geo.tangent<euclidean, 2, f32> -> !jet.jet<4, !geo.point<euclidean, 2, f32>>
  %t = jet.apply "geo.tanh"(%j) : (!jet.jet<4, !geo.point<euclidean, 2, f32>>) -> !jet.jet<4, !geo.point<euclidean, 2, f32>>
  %s = jet.stencil_sum %t stencil "biharmonic" : !jet.jet<4, !geo.point<euclidean, 2, f32>> -> !geo.point<euclidean, 2, f32>
  func.return %s : !geo.point<euclidean, 2, f32>
}
