// RUN: geomc %examples/hyperbolic_classifier.geo --emit=ir | filecheck %s

// CHECK-LABEL: func.func @Encoder(
// CHECK-SAME:    %[[X:.*]]: !geo.point<poincare<1.0>, 2, f32>) -> !geo.point<poincare<1.0>, 16, f32> {
// CHECK-NEXT:  %[[W:.*]] = geo.param "Encoder.mobius_linear0.weight" init "glorot_uniform" : tensor<16x2xf32>
// CHECK-NEXT:  %[[MV:.*]] = geo.mobius_matvec %[[W]], %[[X]] :
// The Möbius bias is a point on the ball, so Riemannian optimizers move it along geodesics.
// CHECK-NEXT:  %[[B:.*]] = geo.param "Encoder.mobius_linear0.bias" init "zeros" : !geo.point<poincare<1.0>, 16, f32>
// CHECK-NEXT:  %[[H:.*]] = geo.mobius_add %[[MV]], %[[B]] :
// CHECK-NEXT:  %[[T:.*]] = geo.logmap0 %[[H]] :
// CHECK-NEXT:  %[[A:.*]] = geo.tanh %[[T]] :
// CHECK-NEXT:  %[[P:.*]] = geo.expmap0 %[[A]] :
// CHECK-NEXT:  func.return %[[P]] : !geo.point<poincare<1.0>, 16, f32>

// CHECK-LABEL: func.func @Classifier(
// CHECK-SAME:    -> !geo.point<euclidean, 4, f32> {
// CHECK-NEXT:  %[[Z:.*]] = func.call @Encoder(%{{.*}})
// CHECK-NEXT:  %[[TZ:.*]] = geo.logmap0 %[[Z]] :
// CHECK-NEXT:  %[[W2:.*]] = geo.param "Classifier.linear0.weight" init "glorot_uniform" : tensor<4x16xf32>
// CHECK-NEXT:  %[[L:.*]] = geo.linear %[[TZ]], %[[W2]] : !geo.tangent<poincare<1.0>, 16, f32>, tensor<4x16xf32> -> !geo.tangent<poincare<1.0>, 4, f32>
// CHECK-NEXT:  %[[B2:.*]] = geo.param "Classifier.linear0.bias" init "zeros" : tensor<4xf32>
// CHECK-NEXT:  %[[LB:.*]] = geo.bias %[[L]], %[[B2]] :
// CHECK-NEXT:  %[[C:.*]] = geo.coords %[[LB]] : !geo.tangent<poincare<1.0>, 4, f32> -> !geo.point<euclidean, 4, f32>
// CHECK-NEXT:  func.return %[[C]]
