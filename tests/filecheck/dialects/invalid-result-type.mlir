// A geo op's result type is inferred from its operands; a different one is rejected.
// RUN: ( geomc %s --passes=; test $? -eq 1 ) 2>&1 | filecheck %s

// CHECK: error: {{.*}}: invalid IR: geo.logmap0: result type !geo.point<euclidean, 4, f32> does not match the expected !geo.tangent<poincare<1.0>, 4, f32>
// CHECK-NOT: Traceback

func.func @f(%x: !geo.point<poincare<1.0>, 4, f32>) -> !geo.point<euclidean, 4, f32> {
  %0 = geo.logmap0 %x : !geo.point<poincare<1.0>, 4, f32> -> !geo.point<euclidean, 4, f32>
  func.return %0 : !geo.point<euclidean, 4, f32>
}
