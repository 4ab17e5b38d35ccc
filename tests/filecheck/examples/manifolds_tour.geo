// Golden IR of examples/manifolds_tour.geo: one function per manifold (poincare, lorentz,
// sphere, torus<turns>) using every geometric op; types record point vs tangent.
// RUN: geomc %examples/manifolds_tour.geo --emit=ir | filecheck %s

// CHECK-LABEL: func.func @BallOps(
// CHECK-SAME:    %[[X:.*]]: !geo.point<poincare<1.0>, 4, f32>, %[[Y:.*]]: !geo.point<poincare<1.0>, 4, f32>, %[[R:.*]]: !geo.point<euclidean, 1, f32>) -> !geo.point<poincare<1.0>, 4, f32> {
// CHECK-NEXT:  %[[V:.*]] = geo.logmap %[[X]], %[[Y]] : !geo.point<poincare<1.0>, 4, f32>, !geo.point<poincare<1.0>, 4, f32> -> !geo.tangent<poincare<1.0>, 4, f32>
// CHECK-NEXT:  %[[W:.*]] = geo.parallel_transport %[[X]], %[[Y]], %[[V]] : !geo.point<poincare<1.0>, 4, f32>, !geo.point<poincare<1.0>, 4, f32>, !geo.tangent<poincare<1.0>, 4, f32> -> !geo.tangent<poincare<1.0>, 4, f32>
// CHECK-NEXT:  %[[Z0:.*]] = geo.expmap %[[Y]], %[[W]] : !geo.point<poincare<1.0>, 4, f32>, !geo.tangent<poincare<1.0>, 4, f32> -> !geo.point<poincare<1.0>, 4, f32>
// CHECK-NEXT:  %[[RX:.*]] = geo.mobius_scalar %[[R]], %[[X]] : !geo.point<euclidean, 1, f32>, !geo.point<poincare<1.0>, 4, f32> -> !geo.point<poincare<1.0>, 4, f32>
// CHECK-NEXT:  %[[Z1:.*]] = geo.mobius_add %[[Z0]], %[[RX]] : {{.*}} -> !geo.point<poincare<1.0>, 4, f32>
// CHECK-NEXT:  %[[MW:.*]] = geo.param "BallOps.mobius_matvec0.weight" init "glorot_uniform" : tensor<4x4xf32>
// CHECK-NEXT:  %[[Z2:.*]] = geo.mobius_matvec %[[MW]], %[[Z1]] : tensor<4x4xf32>, !geo.point<poincare<1.0>, 4, f32> -> !geo.point<poincare<1.0>, 4, f32>
// mobius_relu, then proj
// CHECK-NEXT:  %[[T0:.*]] = geo.logmap0 %[[Z2]] : {{.*}} -> !geo.tangent<poincare<1.0>, 4, f32>
// CHECK-NEXT:  %[[T1:.*]] = geo.relu %[[T0]] : {{.*}} -> !geo.tangent<poincare<1.0>, 4, f32>
// CHECK-NEXT:  %[[P0:.*]] = geo.expmap0 %[[T1]] : {{.*}} -> !geo.point<poincare<1.0>, 4, f32>
// CHECK-NEXT:  %[[P1:.*]] = geo.proj %[[P0]] : !geo.point<poincare<1.0>, 4, f32> -> !geo.point<poincare<1.0>, 4, f32>
// CHECK-NEXT:  func.return %[[P1]] : !geo.point<poincare<1.0>, 4, f32>
// CHECK-NEXT: }

// A Euclidean layer is legal on a tangent vector: linear/bias keep the tangent type.
// CHECK-LABEL: func.func @LorentzOps(
// CHECK-SAME:    %[[X:.*]]: !geo.point<lorentz<1.0>, 5, f32>) -> !geo.point<euclidean, 1, f32> {
// CHECK-NEXT:  %[[V:.*]] = geo.logmap0 %[[X]] : !geo.point<lorentz<1.0>, 5, f32> -> !geo.tangent<lorentz<1.0>, 5, f32>
// CHECK-NEXT:  %[[W0:.*]] = geo.param "LorentzOps.linear0.weight" init "glorot_uniform" : tensor<5x5xf32>
// CHECK-NEXT:  %[[L0:.*]] = geo.linear %[[V]], %[[W0]] : !geo.tangent<lorentz<1.0>, 5, f32>, tensor<5x5xf32> -> !geo.tangent<lorentz<1.0>, 5, f32>
// CHECK-NEXT:  %[[B0:.*]] = geo.param "LorentzOps.linear0.bias" init "zeros" : tensor<5xf32>
// CHECK-NEXT:  %[[A0:.*]] = geo.bias %[[L0]], %[[B0]] : !geo.tangent<lorentz<1.0>, 5, f32>, tensor<5xf32> -> !geo.tangent<lorentz<1.0>, 5, f32>
// CHECK-NEXT:  %[[S:.*]] = geo.sigmoid %[[A0]] : {{.*}} -> !geo.tangent<lorentz<1.0>, 5, f32>
// CHECK-NEXT:  %[[YP:.*]] = geo.expmap0 %[[S]] : !geo.tangent<lorentz<1.0>, 5, f32> -> !geo.point<lorentz<1.0>, 5, f32>
// CHECK-NEXT:  %[[D:.*]] = geo.dist %[[X]], %[[YP]] : !geo.point<lorentz<1.0>, 5, f32>, !geo.point<lorentz<1.0>, 5, f32> -> !geo.point<euclidean, 1, f32>
// CHECK-NEXT:  func.return %[[D]] : !geo.point<euclidean, 1, f32>
// CHECK-NEXT: }

// CHECK-LABEL: func.func @SphereOps(
// CHECK-SAME:    %[[X:.*]]: !geo.point<sphere, 3, f32>, %[[V:.*]]: !geo.tangent<sphere, 3, f32>) -> !geo.point<sphere, 3, f32> {
// CHECK-NEXT:  %[[Y:.*]] = geo.expmap %[[X]], %[[V]] : !geo.point<sphere, 3, f32>, !geo.tangent<sphere, 3, f32> -> !geo.point<sphere, 3, f32>
// CHECK-NEXT:  %[[P:.*]] = geo.proj %[[Y]] : !geo.point<sphere, 3, f32> -> !geo.point<sphere, 3, f32>
// CHECK-NEXT:  func.return %[[P]] : !geo.point<sphere, 3, f32>
// CHECK-NEXT: }

// pow(d, 2.0) + sqrt(softplus(d)) - log(exp(d)) / 2.0: division by a number is geo.scale 0.5.
// CHECK-LABEL: func.func @TorusOps(
// CHECK-SAME:    %[[A:.*]]: !geo.point<torus<turns>, 2, f32>, %[[B:.*]]: !geo.point<torus<turns>, 2, f32>) -> !geo.point<euclidean, 2, f32> {
// CHECK-NEXT:  %[[LM:.*]] = geo.logmap %[[A]], %[[B]] : {{.*}} -> !geo.tangent<torus<turns>, 2, f32>
// CHECK-NEXT:  %[[D:.*]] = geo.coords %[[LM]] : !geo.tangent<torus<turns>, 2, f32> -> !geo.point<euclidean, 2, f32>
// CHECK-NEXT:  %[[POW:.*]] = geo.pow %[[D]] exponent 2.0 : !geo.point<euclidean, 2, f32> -> !geo.point<euclidean, 2, f32>
// CHECK-NEXT:  %[[SP:.*]] = geo.softplus %[[D]] : {{.*}} -> !geo.point<euclidean, 2, f32>
// CHECK-NEXT:  %[[SQ:.*]] = geo.sqrt %[[SP]] : {{.*}} -> !geo.point<euclidean, 2, f32>
// CHECK-NEXT:  %[[SUM:.*]] = geo.add %[[POW]], %[[SQ]] : {{.*}} -> !geo.point<euclidean, 2, f32>
// CHECK-NEXT:  %[[EX:.*]] = geo.exp %[[D]] : {{.*}} -> !geo.point<euclidean, 2, f32>
// CHECK-NEXT:  %[[LG:.*]] = geo.log %[[EX]] : {{.*}} -> !geo.point<euclidean, 2, f32>
// CHECK-NEXT:  %[[HALF:.*]] = geo.scale %[[LG]] factor 0.5 : {{.*}} -> !geo.point<euclidean, 2, f32>
// CHECK-NEXT:  %[[OUT:.*]] = geo.sub %[[SUM]], %[[HALF]] : {{.*}} -> !geo.point<euclidean, 2, f32>
// CHECK-NEXT:  func.return %[[OUT]] : !geo.point<euclidean, 2, f32>
// CHECK-NEXT: }
