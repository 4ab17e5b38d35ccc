// jet.directional of order K returns a jet of order K.
// RUN: ( geomc %s --passes=; test $? -eq 1 ) 2>&1 | filecheck %s

// CHECK: error: {{.*}}: invalid IR: jet.directional: result #0 has type !jet.jet<4, !geo.point<euclidean, 1, f32>>, expected !jet.jet<3, !geo.point<euclidean, 1, f32>> (a jet of order 3 over the model output type)
// CHECK-NOT: Traceback

func.func @U(%x: !geo.point<euclidean, 2, f32>) -> !geo.point<euclidean, 1, f32> {
  %0 = geo.dist %x, %x : !geo.point<euclidean, 2, f32>, !geo.point<euclidean, 2, f32> -> !geo.point<euclidean, 1, f32>
  func.return %0 : !geo.point<euclidean, 1, f32>
}
func.func @d(%x: !geo.point<euclidean, 2, f32>, %v: !geo.tangent<euclidean, 2, f32>) -> !jet.jet<4, !geo.point<euclidean, 1, f32>> {
  %0 = jet.directional @U(%x) along %v wrt 0 order 3 : (!geo.point<euclidean, 2, f32>), !geo.tangent<euclidean, 2, f32> -> !jet.jet<4, !geo.point<euclidean, 1, f32>>
  func.return %0 : !jet.jet<4, !geo.point<euclidean, 1, f32>>
}
