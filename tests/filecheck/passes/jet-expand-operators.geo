// RUN: geomc %s --passes=jet-expand | filecheck %s
// The second-order operators: the Laplacian is one collapsed jet (value, D directions,
// summed second-order part) read by jet.trace; the biharmonic is order-4 jets along a
// stencil of directions; hvp is the gradient (reverse mode) of a generated jvp function.
model U(x: R[2], s: R[1]) -> R[1] {
  return linear(tanh(linear(x, 2 -> 4)) * sigmoid(linear(s, 1 -> 4)), 4 -> 1, bias = false)
}

derive lap = laplacian(U)
derive bih = biharmonic(U)
derive hv = hvp(U)
derive g = grad(U)

// CHECK-LABEL: func.func @lap(
// CHECK-NEXT:    %[[C:.*]] = jet.collapsed_seed %x : !geo.point<euclidean, 2, f32> -> !jet.collapsed<!geo.point<euclidean, 2, f32>>
// CHECK:         jet.apply "geo.linear"(%[[C]], %{{.*}}) : (!jet.collapsed<!geo.point<euclidean, 2, f32>>, tensor<4x2xf32>) -> !jet.collapsed<!geo.point<euclidean, 4, f32>>
// CHECK:         %[[SIG:.*]] = geo.sigmoid
// CHECK-NEXT:    %[[M:.*]] = jet.apply "geo.mul"(%{{.*}}, %[[SIG]]) : (!jet.collapsed<!geo.point<euclidean, 4, f32>>, !geo.point<euclidean, 4, f32>) -> !jet.collapsed<!geo.point<euclidean, 4, f32>>
// CHECK:         %[[T:.*]] = jet.trace %{{.*}} : !jet.collapsed<!geo.point<euclidean, 1, f32>> -> !geo.point<euclidean, 1, f32>
// CHECK-NEXT:    func.return %[[T]]

// CHECK-LABEL: func.func @bih(
// CHECK-NEXT:    %[[S:.*]] = jet.stencil_seed %x stencil "biharmonic" : !geo.point<euclidean, 2, f32> -> !jet.jet<4, !geo.point<euclidean, 2, f32>>
// CHECK:         %[[B:.*]] = jet.stencil_sum %{{.*}} stencil "biharmonic" : !jet.jet<4, !geo.point<euclidean, 1, f32>> -> !geo.point<euclidean, 1, f32>
// CHECK-NEXT:    func.return %[[B]]

// CHECK-LABEL: func.func @hv(
// CHECK-NEXT:    %[[H:.*]] = jet.grad @U__jvp_wrt0(%x, %s, %v) wrt 0 : (!geo.point<euclidean, 2, f32>, !geo.point<euclidean, 1, f32>, !geo.tangent<euclidean, 2, f32>) -> !geo.tangent<euclidean, 2, f32>
// CHECK-NEXT:    func.return %[[H]]

// The gradient stays a request: the framework's reverse pass.
// CHECK-LABEL: func.func @g(
// CHECK-NEXT:    jet.grad @U(%x, %s) wrt 0

// CHECK-LABEL: func.func private @U__jvp_wrt0(%x: !geo.point<euclidean, 2, f32>, %s: !geo.point<euclidean, 1, f32>, %v: !geo.tangent<euclidean, 2, f32>) -> !geo.tangent<euclidean, 1, f32>
// CHECK-NEXT:    %[[J:.*]] = jet.seed %x, %v order 1
// CHECK:         %[[D:.*]] = jet.coeff %{{.*}} index 1 : !jet.jet<1, !geo.point<euclidean, 1, f32>> -> !geo.tangent<euclidean, 1, f32>
// CHECK-NEXT:    func.return %[[D]]
