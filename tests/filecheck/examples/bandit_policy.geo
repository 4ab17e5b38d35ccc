// Golden IR of examples/bandit_policy.geo (the policy of examples/rl_bandit.py): two
// affine layers with a tanh, the layer pairs fused by nothing (no derive request).
// RUN: geomc %examples/bandit_policy.geo --emit=ir | filecheck %s

// CHECK-LABEL: func.func @Policy(
// CHECK-SAME:    %[[X:.*]]: !geo.point<euclidean, 6, f32>) -> !geo.point<euclidean, 4, f32> {
// CHECK:         geo.param "Policy.linear0.weight" init "glorot_uniform" : tensor<32x6xf32>
// CHECK:         geo.linear %[[X]]
// CHECK:         %[[H:.*]] = geo.tanh
// CHECK:         geo.param "Policy.linear1.weight" init "glorot_uniform" : tensor<4x32xf32>
// CHECK:         geo.linear %[[H]]
// CHECK:         func.return
