// Golden IR of examples/hyperbolic_mlp.geo: Möbius layers on the Poincaré ball, a model
// calling another model (func.call, params owned by the callee), and that call inlined.
// RUN: geomc %examples/hyperbolic_mlp.geo --emit=ir | filecheck %s
// RUN: geomc %examples/hyperbolic_mlp.geo --passes=inline-models,cse,dce | filecheck %s --check-prefix=INLINE
// RUN: geomc %examples/hyperbolic_mlp.geo --passes=inline-models,cse,dce | filecheck %s --check-prefix=NOCALL

// CHECK-LABEL: func.func @HyperbolicMLP(
// CHECK-SAME:    %[[X:.*]]: !geo.point<poincare<1.0>, 16, f32>) -> !geo.point<poincare<1.0>, 8, f32>
// CHECK-SAME:    attributes {contracts = [#contract.lipschitz<6.0, radius = 0.5>], proved = [#contract.lipschitz<5.33{{[0-9]*}}, radius = 0.5>]} {
//
// mobius_linear(x, 16 -> 32): (W ⊗ x) ⊕ b, W a 32x16 tensor, b a point on the ball (init: the origin).
// CHECK-NEXT:  %[[W0:.*]] = geo.param "HyperbolicMLP.mobius_linear0.weight" init "glorot_uniform" : tensor<32x16xf32>
// CHECK-NEXT:  %[[MV0:.*]] = geo.mobius_matvec %[[W0]], %[[X]] : tensor<32x16xf32>, !geo.point<poincare<1.0>, 16, f32> -> !geo.point<poincare<1.0>, 32, f32>
// CHECK-NEXT:  %[[B0:.*]] = geo.param "HyperbolicMLP.mobius_linear0.bias" init "zeros" : !geo.point<poincare<1.0>, 32, f32>
// CHECK-NEXT:  %[[H0:.*]] = geo.mobius_add %[[MV0]], %[[B0]] : {{.*}} -> !geo.point<poincare<1.0>, 32, f32>
//
// mobius_tanh(h) = expmap0(tanh(logmap0(h))): tanh acts on the tangent space.
// CHECK-NEXT:  %[[T0:.*]] = geo.logmap0 %[[H0]] : !geo.point<poincare<1.0>, 32, f32> -> !geo.tangent<poincare<1.0>, 32, f32>
// CHECK-NEXT:  %[[T1:.*]] = geo.tanh %[[T0]] : !geo.tangent<poincare<1.0>, 32, f32> -> !geo.tangent<poincare<1.0>, 32, f32>
// CHECK-NEXT:  %[[H1:.*]] = geo.expmap0 %[[T1]] : !geo.tangent<poincare<1.0>, 32, f32> -> !geo.point<poincare<1.0>, 32, f32>
//
// mobius_linear(h, 32 -> 8)
// CHECK-NEXT:  %[[W1:.*]] = geo.param "HyperbolicMLP.mobius_linear1.weight" init "glorot_uniform" : tensor<8x32xf32>
// CHECK-NEXT:  %[[MV1:.*]] = geo.mobius_matvec %[[W1]], %[[H1]] : {{.*}} -> !geo.point<poincare<1.0>, 8, f32>
// CHECK-NEXT:  %[[B1:.*]] = geo.param "HyperbolicMLP.mobius_linear1.bias" init "zeros" : !geo.point<poincare<1.0>, 8, f32>
// CHECK-NEXT:  %[[OUT:.*]] = geo.mobius_add %[[MV1]], %[[B1]] : {{.*}} -> !geo.point<poincare<1.0>, 8, f32>
// CHECK-NEXT:  func.return %[[OUT]] : !geo.point<poincare<1.0>, 8, f32>
// CHECK-NEXT: }

// The default pipeline keeps the call: the callee owns its parameters.
// CHECK-LABEL: func.func @PrototypeScore(
// CHECK-SAME:    %[[PX:.*]]: !geo.point<poincare<1.0>, 16, f32>, %[[PROTO:.*]]: !geo.point<poincare<1.0>, 8, f32>) -> !geo.point<euclidean, 1, f32> {
// CHECK-NEXT:  %[[Z:.*]] = func.call @HyperbolicMLP(%[[PX]]) : (!geo.point<poincare<1.0>, 16, f32>) -> !geo.point<poincare<1.0>, 8, f32>
// CHECK-NEXT:  %[[D:.*]] = geo.dist %[[Z]], %[[PROTO]] : {{.*}} -> !geo.point<euclidean, 1, f32>
// CHECK-NEXT:  %[[S:.*]] = geo.scale %[[D]] factor -1.0 : !geo.point<euclidean, 1, f32> -> !geo.point<euclidean, 1, f32>
// CHECK-NEXT:  func.return %[[S]] : !geo.point<euclidean, 1, f32>
// CHECK-NEXT: }

// After inline-models the caller holds the callee's layers, with the callee's parameter names.
// INLINE-LABEL: func.func @PrototypeScore(
// INLINE-SAME:    %[[PX:.*]]: !geo.point<poincare<1.0>, 16, f32>, %[[PROTO:.*]]: !geo.point<poincare<1.0>, 8, f32>)
// INLINE-NEXT:  %[[W0:.*]] = geo.param "HyperbolicMLP.mobius_linear0.weight" init "glorot_uniform" : tensor<32x16xf32>
// INLINE-NEXT:  geo.mobius_matvec %[[W0]], %[[PX]] :
// INLINE:       geo.param "HyperbolicMLP.mobius_linear0.bias" init "zeros"
// INLINE:       geo.tanh
// INLINE:       geo.param "HyperbolicMLP.mobius_linear1.weight" init "glorot_uniform" : tensor<8x32xf32>
// INLINE:       geo.param "HyperbolicMLP.mobius_linear1.bias" init "zeros"
// INLINE:       %[[Z:.*]] = geo.mobius_add
// INLINE-NEXT:  %[[D:.*]] = geo.dist %[[Z]], %[[PROTO]] :
// INLINE-NEXT:  %[[S:.*]] = geo.scale %[[D]] factor -1.0
// INLINE-NEXT:  func.return %[[S]]

// No call is left anywhere in the module.
// NOCALL-NOT: func.call
