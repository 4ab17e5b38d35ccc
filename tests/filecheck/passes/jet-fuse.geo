// RUN: geomc %s --passes=jet-expand --dump-ir-after-all 2>&1 >/dev/null | filecheck %s --check-prefix=BEFORE
// RUN: geomc %s --passes=jet-expand,jet-fuse | filecheck %s
// jet-fuse turns each dense layer of a jet propagation (linear, bias, activation on a jet)
// into one jet.layer; a lone linear map, a layer on plain values, and a linear map whose
// output has another use stay as they are.
model U(x: R[2], s: R[3]) -> R[1] {
  let h = tanh(linear(x, 2 -> 4))
  let g = sigmoid(linear(s, 3 -> 4))
  let k = linear(h, 4 -> 4, bias = false)
  let z = softplus(linear(k * g, 4 -> 4, bias = false)) + k
  return linear(z, 4 -> 1)
}

derive d = directional(U, order = 3)
derive lap = laplacian(U)

// BEFORE-LABEL: func.func @d(
// BEFORE:         %[[L:.*]] = jet.apply "geo.linear"
// BEFORE-NEXT:    %{{.*}} = geo.param "U.linear0.bias"
// BEFORE-NEXT:    %[[B:.*]] = jet.apply "geo.bias"(%[[L]]
// BEFORE-NEXT:    %h = jet.apply "geo.tanh"(%[[B]])

// CHECK-LABEL: func.func @d(
// CHECK:         %[[J:.*]] = jet.seed %x, %v order 3
// CHECK-NEXT:    %[[W:.*]] = geo.param "U.linear0.weight"
// CHECK-NEXT:    %[[B:.*]] = geo.param "U.linear0.bias"
// CHECK-NEXT:    %h = jet.layer %[[J]], %[[W]], %[[B]] activation "geo.tanh" : (!jet.jet<3, !geo.point<euclidean, 2, f32>>, tensor<4x2xf32>, tensor<4xf32>) -> !jet.jet<3, !geo.point<euclidean, 4, f32>>
// The layer on the plain input s is not a jet op.
// CHECK:         %[[G0:.*]] = geo.linear %s
// CHECK:         %g = geo.sigmoid
// k feeds the product and the sum: its linear map stays unfused.
// CHECK:         %k = jet.apply "geo.linear"(%h,
// CHECK:         %[[M:.*]] = jet.apply "geo.mul"(%k, %g)
// CHECK:         %[[SP:.*]] = jet.layer %[[M]], %{{.*}} activation "geo.softplus" : (!jet.jet<3, {{.*}}>, tensor<4x4xf32>) -> !jet.jet<3,
// CHECK-NEXT:    %z = jet.apply "geo.add"(%[[SP]], %k)
// The output layer has a bias and no activation.
// CHECK:         %[[OUT:.*]] = jet.layer %z, %{{.*}}, %{{.*}} : (!jet.jet<3, !geo.point<euclidean, 4, f32>>, tensor<1x4xf32>, tensor<1xf32>) -> !jet.jet<3, !geo.point<euclidean, 1, f32>>
// CHECK-NEXT:    func.return %[[OUT]]
// CHECK-NOT:     jet.apply "geo.tanh"

// The same on the collapsed Laplacian jets.
// CHECK-LABEL: func.func @lap(
// CHECK:         %h = jet.layer %{{.*}} activation "geo.tanh" : (!jet.collapsed<!geo.point<euclidean, 2, f32>>, tensor<4x2xf32>, tensor<4xf32>) -> !jet.collapsed<!geo.point<euclidean, 4, f32>>
// CHECK:         jet.trace
