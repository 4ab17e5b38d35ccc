// Golden IR of examples/torus_oscillator.geo: torus<radians> points, coords into R^n, a
// contract on a torus model, number-times-vector folded into geo.scale.
// RUN: geomc %examples/torus_oscillator.geo --emit=ir | filecheck %s
// Without passes the two coords(theta) stay separate; the default pipeline (cse) merges them.
// RUN: geomc %examples/torus_oscillator.geo --passes= | filecheck %s --check-prefix=RAW

// CHECK-LABEL: func.func @PhaseReadout(
// CHECK-SAME:    %[[TH:.*]]: !geo.point<torus<radians>, 4, f32>) -> !geo.point<euclidean, 1, f32> {
// CHECK-NEXT:  %[[C:.*]] = geo.coords %[[TH]] : !geo.point<torus<radians>, 4, f32> -> !geo.point<euclidean, 4, f32>
// CHECK-NEXT:  %[[SIN:.*]] = geo.sin %[[C]] : !geo.point<euclidean, 4, f32> -> !geo.point<euclidean, 4, f32>
// CHECK-NEXT:  %[[COS:.*]] = geo.cos %[[C]] : !geo.point<euclidean, 4, f32> -> !geo.point<euclidean, 4, f32>
// CHECK-NEXT:  %[[W0:.*]] = geo.param "PhaseReadout.linear0.weight" init "glorot_uniform" : tensor<16x4xf32>
// CHECK-NEXT:  %[[L0:.*]] = geo.linear %[[SIN]], %[[W0]] : {{.*}} -> !geo.point<euclidean, 16, f32>
// CHECK-NEXT:  %[[B0:.*]] = geo.param "PhaseReadout.linear0.bias" init "zeros" : tensor<16xf32>
// CHECK-NEXT:  %[[A0:.*]] = geo.bias %[[L0]], %[[B0]] : {{.*}} -> !geo.point<euclidean, 16, f32>
// CHECK-NEXT:  %[[W1:.*]] = geo.param "PhaseReadout.linear1.weight" init "glorot_uniform" : tensor<16x4xf32>
// CHECK-NEXT:  %[[L1:.*]] = geo.linear %[[COS]], %[[W1]] : {{.*}} -> !geo.point<euclidean, 16, f32>
// CHECK-NEXT:  %[[B1:.*]] = geo.param "PhaseReadout.linear1.bias" init "zeros" : tensor<16xf32>
// CHECK-NEXT:  %[[A1:.*]] = geo.bias %[[L1]], %[[B1]] : {{.*}} -> !geo.point<euclidean, 16, f32>
// CHECK-NEXT:  %[[SUM:.*]] = geo.add %[[A0]], %[[A1]] : {{.*}} -> !geo.point<euclidean, 16, f32>
// CHECK-NEXT:  %[[H:.*]] = geo.tanh %[[SUM]] : {{.*}} -> !geo.point<euclidean, 16, f32>
// CHECK-NEXT:  %[[W2:.*]] = geo.param "PhaseReadout.linear2.weight" init "glorot_uniform" : tensor<1x16xf32>
// CHECK-NEXT:  %[[L2:.*]] = geo.linear %[[H]], %[[W2]] : {{.*}} -> !geo.point<euclidean, 1, f32>
// CHECK-NEXT:  %[[B2:.*]] = geo.param "PhaseReadout.linear2.bias" init "zeros" : tensor<1xf32>
// CHECK-NEXT:  %[[OUT:.*]] = geo.bias %[[L2]], %[[B2]] : {{.*}} -> !geo.point<euclidean, 1, f32>
// CHECK-NEXT:  func.return %[[OUT]] : !geo.point<euclidean, 1, f32>
// CHECK-NEXT: }

// exp(-0.5 * d * d) parses as ((-0.5 * d) * d).
// CHECK-LABEL: func.func @TorusKernel(
// CHECK-SAME:    %[[A:.*]]: !geo.point<torus<radians>, 4, f32>, %[[B:.*]]: !geo.point<torus<radians>, 4, f32>) -> !geo.point<euclidean, 1, f32>
// CHECK-SAME:    attributes {contracts = [#contract.equivariant<torus_translation>], proved = [#contract.equivariant<torus_translation>]} {
// CHECK-NEXT:  %[[D:.*]] = geo.dist %[[A]], %[[B]] : !geo.point<torus<radians>, 4, f32>, !geo.point<torus<radians>, 4, f32> -> !geo.point<euclidean, 1, f32>
// CHECK-NEXT:  %[[S:.*]] = geo.scale %[[D]] factor -0.5 : {{.*}} -> !geo.point<euclidean, 1, f32>
// CHECK-NEXT:  %[[M:.*]] = geo.mul %[[S]], %[[D]] : {{.*}} -> !geo.point<euclidean, 1, f32>
// CHECK-NEXT:  %[[E:.*]] = geo.exp %[[M]] : {{.*}} -> !geo.point<euclidean, 1, f32>
// CHECK-NEXT:  func.return %[[E]] : !geo.point<euclidean, 1, f32>
// CHECK-NEXT: }

// A layer on a tangent vector keeps it a tangent; expmap takes it back to the torus.
// CHECK-LABEL: func.func @PhaseStep(
// CHECK-SAME:    %[[TH:.*]]: !geo.point<torus<radians>, 4, f32>, %[[TG:.*]]: !geo.point<torus<radians>, 4, f32>) -> !geo.point<torus<radians>, 4, f32> {
// CHECK-NEXT:  %[[V:.*]] = geo.logmap %[[TH]], %[[TG]] : {{.*}} -> !geo.tangent<torus<radians>, 4, f32>
// CHECK-NEXT:  %[[W0:.*]] = geo.param "PhaseStep.linear0.weight" init "glorot_uniform" : tensor<4x4xf32>
// CHECK-NEXT:  %[[L0:.*]] = geo.linear %[[V]], %[[W0]] : !geo.tangent<torus<radians>, 4, f32>, tensor<4x4xf32> -> !geo.tangent<torus<radians>, 4, f32>
// CHECK-NEXT:  %[[B0:.*]] = geo.param "PhaseStep.linear0.bias" init "zeros" : tensor<4xf32>
// CHECK-NEXT:  %[[A0:.*]] = geo.bias %[[L0]], %[[B0]] : {{.*}} -> !geo.tangent<torus<radians>, 4, f32>
// CHECK-NEXT:  %[[T:.*]] = geo.tanh %[[A0]] : {{.*}} -> !geo.tangent<torus<radians>, 4, f32>
// CHECK-NEXT:  %[[V1:.*]] = geo.scale %[[T]] factor 0.1 : {{.*}} -> !geo.tangent<torus<radians>, 4, f32>
// CHECK-NEXT:  %[[P:.*]] = geo.expmap %[[TH]], %[[V1]] : !geo.point<torus<radians>, 4, f32>, !geo.tangent<torus<radians>, 4, f32> -> !geo.point<torus<radians>, 4, f32>
// CHECK-NEXT:  %[[Q:.*]] = geo.proj %[[P]] : {{.*}} -> !geo.point<torus<radians>, 4, f32>
// CHECK-NEXT:  func.return %[[Q]] : !geo.point<torus<radians>, 4, f32>
// CHECK-NEXT: }

// RAW-LABEL: func.func @PhaseReadout(
// RAW-SAME:    %[[TH:.*]]: !geo.point<torus<radians>, 4, f32>)
// RAW-NEXT:  %[[C0:.*]] = geo.coords %[[TH]] :
// RAW-NEXT:  geo.sin %[[C0]] :
// RAW-NEXT:  %[[C1:.*]] = geo.coords %[[TH]] :
// RAW-NEXT:  geo.cos %[[C1]] :
