// Golden IR of examples/hyperbolic_residual.geo: where insert-transport (first in the
// default pipeline) carries tangents, and the holonomy builtin's op.
// RUN: geomc %examples/hyperbolic_residual.geo --emit=ir | filecheck %s
// Without the pass the residual's expmap is rejected at its line, naming both points.
// RUN: ( geomc %examples/hyperbolic_residual.geo --passes=cse; test $? -eq 1 ) 2>&1 | filecheck %s --check-prefix=MISSING

// The residual step x + f(x): f's tangent lives at the origin (logmap0) and is carried to x.
// CHECK-LABEL: func.func @Block(
// CHECK-SAME:    %[[X:[a-z0-9_]+]]: !geo.point<poincare<1.0>, 4, f32>)
// CHECK:       %[[U:.*]] = geo.scale %u factor 0.5
// CHECK-NEXT:  %[[O:.*]] = geo.origin %[[U]]
// CHECK-NEXT:  %[[V:.*]] = geo.parallel_transport %[[O]], %[[X]], %[[U]]
// CHECK-NEXT:  %{{.*}} = geo.expmap %[[X]], %[[V]]

// Messages at y and at z are carried to x before the sums at x.
// CHECK-LABEL: func.func @Aggregate(
// CHECK-SAME:    %[[X:[a-z0-9_]+]]: {{.*}}, %[[Y:[a-z0-9_]+]]: {{.*}}, %[[Z:[a-z0-9_]+]]: {{.*}})
// CHECK:       %[[L:.*]] = geo.logmap %[[X]], %[[Y]]
// CHECK-NEXT:  %[[MY:.*]] = geo.parallel_transport %[[Y]], %[[X]], %my
// CHECK-NEXT:  %[[S:.*]] = geo.add %[[L]], %[[MY]]
// CHECK-NEXT:  %[[MZ:.*]] = geo.parallel_transport %[[Z]], %[[X]], %mz
// CHECK-NEXT:  %{{.*}} = geo.add %[[S]], %[[MZ]]

// CHECK-LABEL: func.func @Loop(
// CHECK:       geo.holonomy %{{.*}} around %x, %y, %z

// MISSING: hyperbolic_residual.geo:18:10: error: geo.expmap mixes tangent vectors at different base points: operand 'v' is a tangent at the origin of #geo.poincare<1.0>, not at %x (argument 0 of @Block)
