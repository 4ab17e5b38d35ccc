// Golden IR of examples/equivariant_ball.geo: contracts on func.func, Möbius negation
// through the tangent space at the origin, dist as a scalar.
// RUN: geomc %examples/equivariant_ball.geo --emit=ir | filecheck %s
// RUN: geomc %examples/equivariant_ball.geo --emit=ir | filecheck %s --check-prefix=NOPARAM

// CHECK-LABEL: func.func @Geodesic(
// CHECK-SAME:    %[[X:.*]]: !geo.point<poincare<0.5>, 8, f32>, %[[Y:.*]]: !geo.point<poincare<0.5>, 8, f32>, %[[T:.*]]: !geo.point<euclidean, 1, f32>) -> !geo.point<poincare<0.5>, 8, f32>
// CHECK-SAME:    attributes {contracts = [#contract.equivariant<ball_rotation>], proved = [#contract.equivariant<ball_rotation>]}
// CHECK-NEXT:  %[[L:.*]] = geo.logmap0 %[[X]] : !geo.point<poincare<0.5>, 8, f32> -> !geo.tangent<poincare<0.5>, 8, f32>
// CHECK-NEXT:  %[[N:.*]] = geo.neg %[[L]] : !geo.tangent<poincare<0.5>, 8, f32> -> !geo.tangent<poincare<0.5>, 8, f32>
// CHECK-NEXT:  %[[MX:.*]] = geo.expmap0 %[[N]] : !geo.tangent<poincare<0.5>, 8, f32> -> !geo.point<poincare<0.5>, 8, f32>
// CHECK-NEXT:  %[[D:.*]] = geo.mobius_add %[[MX]], %[[Y]]
// CHECK-NEXT:  %[[S:.*]] = geo.mobius_scalar %[[T]], %[[D]] : !geo.point<euclidean, 1, f32>, !geo.point<poincare<0.5>, 8, f32> -> !geo.point<poincare<0.5>, 8, f32>
// CHECK-NEXT:  %[[R:.*]] = geo.mobius_add %[[X]], %[[S]]
// CHECK-NEXT:  func.return %[[R]] : !geo.point<poincare<0.5>, 8, f32>
// CHECK-NEXT: }

// CHECK-LABEL: func.func @PairEnergy(
// CHECK-SAME:    %[[P:.*]]: !geo.point<euclidean, 2, f32>, %[[Q:.*]]: !geo.point<euclidean, 2, f32>) -> !geo.point<euclidean, 1, f32>
// CHECK-SAME:    attributes {contracts = [#contract.equivariant<so2>], proved = [#contract.equivariant<so2>]}
// CHECK-NEXT:  %[[D:.*]] = geo.dist %[[P]], %[[Q]] : !geo.point<euclidean, 2, f32>, !geo.point<euclidean, 2, f32> -> !geo.point<euclidean, 1, f32>
// CHECK-NEXT:  %[[DD:.*]] = geo.mul %[[D]], %[[D]] : {{.*}} -> !geo.point<euclidean, 1, f32>
// CHECK-NEXT:  func.return %[[DD]] : !geo.point<euclidean, 1, f32>
// CHECK-NEXT: }

// Neither model has learned parameters.
// NOPARAM-NOT: geo.param
