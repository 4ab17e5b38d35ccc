// Golden IR of examples/lipschitz_classifier.geo: Euclidean MLPs (linear = geo.linear +
// geo.bias with named, initialised params) carrying #contract.lipschitz / #contract.monotone,
// and the bounds verify-contracts (first in the default pipeline) proved from seed 0.
// RUN: geomc %examples/lipschitz_classifier.geo --emit=ir | filecheck %s

// CHECK-LABEL: func.func @RobustClassifier(
// CHECK-SAME:    %[[X:.*]]: !geo.point<euclidean, 32, f32>) -> !geo.point<euclidean, 10, f32>
// CHECK-SAME:    attributes {contracts = [#contract.lipschitz<4.0>], proved = [#contract.lipschitz<3.5227{{[0-9]*}}>]} {
//
// relu(linear(x, 32 -> 64))
// CHECK-NEXT:  %[[W0:.*]] = geo.param "RobustClassifier.linear0.weight" init "glorot_uniform" : tensor<64x32xf32>
// CHECK-NEXT:  %[[L0:.*]] = geo.linear %[[X]], %[[W0]] : !geo.point<euclidean, 32, f32>, tensor<64x32xf32> -> !geo.point<euclidean, 64, f32>
// CHECK-NEXT:  %[[B0:.*]] = geo.param "RobustClassifier.linear0.bias" init "zeros" : tensor<64xf32>
// CHECK-NEXT:  %[[A0:.*]] = geo.bias %[[L0]], %[[B0]] : !geo.point<euclidean, 64, f32>, tensor<64xf32> -> !geo.point<euclidean, 64, f32>
// CHECK-NEXT:  %[[H0:.*]] = geo.relu %[[A0]] : !geo.point<euclidean, 64, f32> -> !geo.point<euclidean, 64, f32>
//
// relu(linear(h, 64 -> 64))
// CHECK-NEXT:  %[[W1:.*]] = geo.param "RobustClassifier.linear1.weight" init "glorot_uniform" : tensor<64x64xf32>
// CHECK-NEXT:  %[[L1:.*]] = geo.linear %[[H0]], %[[W1]] : {{.*}} -> !geo.point<euclidean, 64, f32>
// CHECK-NEXT:  %[[B1:.*]] = geo.param "RobustClassifier.linear1.bias" init "zeros" : tensor<64xf32>
// CHECK-NEXT:  %[[A1:.*]] = geo.bias %[[L1]], %[[B1]] : {{.*}} -> !geo.point<euclidean, 64, f32>
// CHECK-NEXT:  %[[H1:.*]] = geo.relu %[[A1]] : {{.*}} -> !geo.point<euclidean, 64, f32>
//
// linear(h, 64 -> 10)
// CHECK-NEXT:  %[[W2:.*]] = geo.param "RobustClassifier.linear2.weight" init "glorot_uniform" : tensor<10x64xf32>
// CHECK-NEXT:  %[[L2:.*]] = geo.linear %[[H1]], %[[W2]] : {{.*}} -> !geo.point<euclidean, 10, f32>
// CHECK-NEXT:  %[[B2:.*]] = geo.param "RobustClassifier.linear2.bias" init "zeros" : tensor<10xf32>
// CHECK-NEXT:  %[[OUT:.*]] = geo.bias %[[L2]], %[[B2]] : {{.*}} -> !geo.point<euclidean, 10, f32>
// CHECK-NEXT:  func.return %[[OUT]] : !geo.point<euclidean, 10, f32>
// CHECK-NEXT: }

// @monotone(dose, increasing) names input #0.
// CHECK-LABEL: func.func @DoseResponse(
// CHECK-SAME:    %[[DOSE:.*]]: !geo.point<euclidean, 1, f32>, %[[COV:.*]]: !geo.point<euclidean, 4, f32>) -> !geo.point<euclidean, 1, f32>
// CHECK-SAME:    attributes {contracts = [#contract.monotone<[0], increasing>], proved = [#contract.monotone<[0], increasing>]} {
//
// softplus(linear(dose, 1 -> 8, nonnegative = true) + linear(covariates, 4 -> 8)): two layers,
// numbered in source order; the dose layer's weight carries its constraint.
// CHECK-NEXT:  %[[W0:.*]] = geo.param "DoseResponse.linear0.weight" init "glorot_uniform" {weight_transforms = ["constrain:nonnegative"]} : tensor<8x1xf32>
// CHECK-NEXT:  %[[L0:.*]] = geo.linear %[[DOSE]], %[[W0]] : {{.*}} -> !geo.point<euclidean, 8, f32>
// CHECK-NEXT:  %[[B0:.*]] = geo.param "DoseResponse.linear0.bias" init "zeros" : tensor<8xf32>
// CHECK-NEXT:  %[[A0:.*]] = geo.bias %[[L0]], %[[B0]] : {{.*}} -> !geo.point<euclidean, 8, f32>
// CHECK-NEXT:  %[[W1:.*]] = geo.param "DoseResponse.linear1.weight" init "glorot_uniform" : tensor<8x4xf32>
// CHECK-NEXT:  %[[L1:.*]] = geo.linear %[[COV]], %[[W1]] : {{.*}} -> !geo.point<euclidean, 8, f32>
// CHECK-NEXT:  %[[B1:.*]] = geo.param "DoseResponse.linear1.bias" init "zeros" : tensor<8xf32>
// CHECK-NEXT:  %[[A1:.*]] = geo.bias %[[L1]], %[[B1]] : {{.*}} -> !geo.point<euclidean, 8, f32>
// CHECK-NEXT:  %[[SUM:.*]] = geo.add %[[A0]], %[[A1]] : {{.*}} -> !geo.point<euclidean, 8, f32>
// CHECK-NEXT:  %[[H:.*]] = geo.softplus %[[SUM]] : {{.*}} -> !geo.point<euclidean, 8, f32>
//
// linear(h, 8 -> 1, nonnegative = true)
// CHECK-NEXT:  %[[W2:.*]] = geo.param "DoseResponse.linear2.weight" init "glorot_uniform" {weight_transforms = ["constrain:nonnegative"]} : tensor<1x8xf32>
// CHECK-NEXT:  %[[L2:.*]] = geo.linear %[[H]], %[[W2]] : {{.*}} -> !geo.point<euclidean, 1, f32>
// CHECK-NEXT:  %[[B2:.*]] = geo.param "DoseResponse.linear2.bias" init "zeros" : tensor<1xf32>
// CHECK-NEXT:  %[[OUT:.*]] = geo.bias %[[L2]], %[[B2]] : {{.*}} -> !geo.point<euclidean, 1, f32>
// CHECK-NEXT:  func.return %[[OUT]] : !geo.point<euclidean, 1, f32>
// CHECK-NEXT: }
