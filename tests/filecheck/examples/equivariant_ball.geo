// Golden IR of examples/equivariant_ball.geo: contracts in declaration order on func.func,
// a Möbius activation expanded through the tangent space at the origin, dist as a scalar.
// RUN: geomc %examples/equivariant_ball.geo --emit=ir | filecheck %s
// RUN: geomc %examples/equivariant_ball.geo --emit=ir | filecheck %s --check-prefix=NOPARAM

// CHECK-LABEL: func.func @GyroMidpoint(
// CHECK-SAME:    %[[X:.*]]: !geo.point<poincare<0.5>, 8, f32>, %[[Y:.*]]: !geo.point<poincare<0.5>, 8, f32>) -> !geo.point<poincare<0.5>, 8, f32>
// CHECK-SAME:    attributes {contracts = [#contract.equivariant<ball_rotation>, #contract.lipschitz<4.0>]} {
// CHECK-NEXT:  %[[S:.*]] = geo.mobius_add %[[X]], %[[Y]] : !geo.point<poincare<0.5>, 8, f32>, !geo.point<poincare<0.5>, 8, f32> -> !geo.point<poincare<0.5>, 8, f32>
// CHECK-NEXT:  %[[T:.*]] = geo.logmap0 %[[S]] : !geo.point<poincare<0.5>, 8, f32> -> !geo.tangent<poincare<0.5>, 8, f32>
// CHECK-NEXT:  %[[A:.*]] = geo.tanh %[[T]] : !geo.tangent<poincare<0.5>, 8, f32> -> !geo.tangent<poincare<0.5>, 8, f32>
// CHECK-NEXT:  %[[P:.*]] = geo.expmap0 %[[A]] : !geo.tangent<poincare<0.5>, 8, f32> -> !geo.point<poincare<0.5>, 8, f32>
// CHECK-NEXT:  func.return %[[P]] : !geo.point<poincare<0.5>, 8, f32>
// CHECK-NEXT: }

// CHECK-LABEL: func.func @PairEnergy(
// CHECK-SAME:    %[[P:.*]]: !geo.point<euclidean, 2, f32>, %[[Q:.*]]: !geo.point<euclidean, 2, f32>) -> !geo.point<euclidean, 1, f32>
// CHECK-SAME:    attributes {contracts = [#contract.equivariant<so2>]} {
// CHECK-NEXT:  %[[D:.*]] = geo.dist %[[P]], %[[Q]] : !geo.point<euclidean, 2, f32>, !geo.point<euclidean, 2, f32> -> !geo.point<euclidean, 1, f32>
// CHECK-NEXT:  %[[DD:.*]] = geo.mul %[[D]], %[[D]] : {{.*}} -> !geo.point<euclidean, 1, f32>
// CHECK-NEXT:  func.return %[[DD]] : !geo.point<euclidean, 1, f32>
// CHECK-NEXT: }

// Neither model has learned parameters.
// NOPARAM-NOT: geo.param
