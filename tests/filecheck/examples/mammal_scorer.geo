// Golden IR of examples/hierarchy/mammal_scorer.geo: the model takes a point of a trained
// Poincaré embedding (dimension 5, curvature 1) as !geo.point<poincare<1.0>, 5, f32>.
// RUN: geomc %examples/hierarchy/mammal_scorer.geo --emit=ir | filecheck %s
// RUN: geomc %examples/hierarchy/mammal_scorer.geo --emit=ir -o %t.mlir && geomc %t.mlir --passes= | filecheck %s

// CHECK-LABEL: func.func @Scorer(
// CHECK-SAME:    %[[X:.*]]: !geo.point<poincare<1.0>, 5, f32>) -> !geo.point<euclidean, 1, f32> {
// CHECK-NEXT:  %[[W:.*]] = geo.param "Scorer.mobius_linear0.weight" init "glorot_uniform" : tensor<16x5xf32>
// CHECK-NEXT:  %[[MV:.*]] = geo.mobius_matvec %[[W]], %[[X]] :
// CHECK-NEXT:  %[[B:.*]] = geo.param "Scorer.mobius_linear0.bias" init "zeros" : !geo.point<poincare<1.0>, 16, f32>
// CHECK-NEXT:  %[[H:.*]] = geo.mobius_add %[[MV]], %[[B]] :
// CHECK-NEXT:  %[[T:.*]] = geo.logmap0 %[[H]] :
// CHECK-NEXT:  %[[A:.*]] = geo.tanh %[[T]] :
// CHECK-NEXT:  %[[P:.*]] = geo.expmap0 %[[A]] :
// CHECK-NEXT:  %[[L:.*]] = geo.logmap0 %[[P]] :
// CHECK:       %[[C:.*]] = geo.coords
// CHECK-NEXT:  func.return %[[C]] : !geo.point<euclidean, 1, f32>
