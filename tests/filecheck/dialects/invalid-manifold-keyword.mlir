// An unknown manifold keyword is a parse error, reported at the token with a caret.
// RUN: ( geomc %s --passes=; test $? -eq 1 ) 2>&1 | filecheck %s

// CHECK: invalid-manifold-keyword.mlir:[[# @LINE + 5]]:29: error: unknown manifold 'hyperbolic', expected one of: euclidean, poincare, lorentz, sphere, torus
// CHECK-NEXT: func.func @f(%x: !geo.point<hyperbolic, 4, f32>) {
// CHECK-NEXT: ^~~~~~~~~~
// CHECK-NOT: Traceback

func.func @f(%x: !geo.point<hyperbolic, 4, f32>) {
  func.return
}
