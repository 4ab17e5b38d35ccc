// geo.expmap takes a point and a tangent vector, not two points.
// RUN: ( geomc %s --passes=; test $? -eq 1 ) 2>&1 | filecheck %s

// CHECK: error: {{.*}}: invalid IR: geo.expmap: tangent must be a !geo.tangent, found !geo.point<poincare<1.0>, 4, f32>
// CHECK-NOT: Traceback

func.func @f(%x: !geo.point<poincare<1.0>, 4, f32>, %v: !geo.point<poincare<1.0>, 4, f32>) -> !geo.point<poincare<1.0>, 4, f32> {
  %0 = geo.expmap %x, %v : !geo.point<poincare<1.0>, 4, f32>, !geo.point<poincare<1.0>, 4, f32> -> !geo.point<poincare<1.0>, 4, f32>
  func.return %0 : !geo.point<poincare<1.0>, 4, f32>
}
