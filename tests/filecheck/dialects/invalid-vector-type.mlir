// Elementwise ops need a vector type: a point on a curved manifold is not one.
// RUN: ( geomc %s --passes=; test $? -eq 1 ) 2>&1 | filecheck %s

// CHECK: error: {{.*}}: invalid IR: geo.tanh: operand must be a vector type (a !geo.tangent or a !geo.point on euclidean), found !geo.point<poincare<1.0>, 4, f32>
// CHECK-NOT: Traceback

func.func @f(%x: !geo.point<poincare<1.0>, 4, f32>) -> !geo.point<poincare<1.0>, 4, f32> {
  %0 = geo.tanh %x : !geo.point<poincare<1.0>, 4, f32> -> !geo.point<poincare<1.0>, 4, f32>
  func.return %0 : !geo.point<poincare<1.0>, 4, f32>
}
