// jet.seed's direction must be the tangent type of the primal.
// RUN: ( geomc %s --passes=; test $? -eq 1 ) 2>&1 | filecheck %s

// CHECK: error: {{.*}}: invalid IR: jet.seed: direction !geo.point<euclidean, 2, f32> is not the tangent type of primal !geo.point<euclidean, 2, f32> (expected !geo.tangent<euclidean, 2, f32>)
// CHECK-NOT: Traceback

func.func @f(%x: !geo.point<euclidean, 2, f32>, %v: !geo.point<euclidean, 2, f32>) {
  %j = jet.seed %x, %v order 2 : !geo.point<euclidean, 2, f32>, !geo.point<euclidean, 2, f32> -> !jet.jet<2, !geo.point<euclidean, 2, f32>>
  func.return
}
