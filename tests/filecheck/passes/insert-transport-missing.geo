// Without insert-transport, IR that combines tangents at different base points is rejected
// at the end of the pipeline: exit code 1, the op's line and column, and both points.
// RUN: ( geomc %s --passes=cse; test $? -eq 1 ) 2>&1 | filecheck %s
// The default pipeline runs insert-transport first, so the program builds.
// RUN: geomc %s --emit=ir | filecheck %s --check-prefix=DEFAULT

manifold S = sphere()

model Residual(x: S[3], y: S[3]) -> S[3] {
  let step = logmap(x, y)
  let back = logmap(y, x)
  return expmap(x, step - back)
}

// CHECK: insert-transport-missing.geo:12:25: error: geo.sub mixes tangent vectors at different base points: operand 'rhs' is a tangent at %y (argument 1 of @Residual) but operand 'lhs' is a tangent at %x (argument 0 of @Residual). Run the insert-transport pass
// CHECK-NOT: Traceback

// DEFAULT: geo.parallel_transport %y, %x, %back
