// RUN: geomc %s --passes=jet-expand | filecheck %s
// hvp's helper (the jvp function it takes the gradient of) has a fresh name: a user's
// model called U__jvp_wrt0 stays what it is, and the helper is U__jvp_wrt0_1. Two requests
// on one model share one helper.
model U(x: R[2]) -> R[1] { return tanh(linear(x, 2 -> 1)) }
model U__jvp_wrt0(x: R[2], v: tangent R[2]) -> tangent R[1] { return scale(linear(v, 2 -> 1), 0.0) }
derive h = hvp(U)
derive h2 = hvp(U)

// CHECK-LABEL: func.func @U__jvp_wrt0(%x: !geo.point<euclidean, 2, f32>, %v: !geo.tangent<euclidean, 2, f32>)
// CHECK:         geo.scale %{{.*}} factor 0.0
// CHECK-LABEL: func.func @h(
// CHECK-NEXT:    jet.grad @U__jvp_wrt0_1(%x, %v) wrt 0
// CHECK-LABEL: func.func @h2(
// CHECK-NEXT:    jet.grad @U__jvp_wrt0_1(%x, %v) wrt 0
// CHECK-LABEL: func.func private @U__jvp_wrt0_1(%x: !geo.point<euclidean, 2, f32>, %v: !geo.tangent<euclidean, 2, f32>) -> !geo.tangent<euclidean, 1, f32>
// CHECK-NEXT:    jet.seed %x, %v order 1
// CHECK-NOT:   func.func private
