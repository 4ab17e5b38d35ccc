// The tangent of geo.expmap must live on the base point's manifold (here: another curvature).
// RUN: ( geomc %s --passes=; test $? -eq 1 ) 2>&1 | filecheck %s

// CHECK: error: {{.*}}: invalid IR: geo.expmap: tangent !geo.tangent<poincare<2.0>, 4, f32> does not match base point !geo.point<poincare<1.0>, 4, f32> (expected the same manifold, dimension and element type)
// CHECK-NOT: Traceback

func.func @f(%x: !geo.point<poincare<1.0>, 4, f32>, %v: !geo.tangent<poincare<2.0>, 4, f32>) -> !geo.point<poincare<1.0>, 4, f32> {
  %0 = geo.expmap %x, %v : !geo.point<poincare<1.0>, 4, f32>, !geo.tangent<poincare<2.0>, 4, f32> -> !geo.point<poincare<1.0>, 4, f32>
  func.return %0 : !geo.point<poincare<1.0>, 4, f32>
}
