// RUN: geomc %s --passes=jet-expand | filecheck %s
// jet-expand evaluates the model on jets: the differentiated input is seeded, geo ops on
// jets become jet.apply (weights stay plain), calls call jet functions, constants are lifted.
manifold H = poincare(c = 1.0)

model Enc(x: R[2]) -> R[3] {
  return tanh(linear(x, 2 -> 3, bias = false))
}

model F(s: R[1], x: R[2]) -> R[3] {
  let h = Enc(x)
  return h * scale(Enc(x), 2.0)
}

model Ball(x: H[2], y: H[2]) -> H[2] {
  return mobius_add(x, y)
}

model Const(x: R[2], y: R[3]) -> R[3] {
  return sin(y)
}

derive d2 = directional(F, wrt = x, order = 2)
derive jb = jvp(Ball, wrt = y)
derive dc = directional(Const, order = 3)

// A model called on jets is evaluated once, as a private jet function after it; each call calls it.
// CHECK-LABEL: func.func private @Enc__jet2_wrt0(%x: !jet.jet<2, !geo.point<euclidean, 2, f32>>) -> !jet.jet<2, !geo.point<euclidean, 3, f32>> attributes {jet.function} {
// CHECK-NEXT:    %[[W:.*]] = geo.param "Enc.linear0.weight" init "glorot_uniform" : tensor<3x2xf32>
// CHECK-NEXT:    %[[L:.*]] = jet.apply "geo.linear"(%x, %[[W]]) : (!jet.jet<2, !geo.point<euclidean, 2, f32>>, tensor<3x2xf32>) -> !jet.jet<2, !geo.point<euclidean, 3, f32>>
// CHECK-NEXT:    %[[T:.*]] = jet.apply "geo.tanh"(%[[L]])
// CHECK-NEXT:    func.return %[[T]] : !jet.jet<2, !geo.point<euclidean, 3, f32>>

// CHECK-LABEL: func.func @d2(
// CHECK-NOT:     jet.directional
// CHECK-NEXT:    %[[J:.*]] = jet.seed %x, %v order 2 : {{.*}} -> !jet.jet<2, !geo.point<euclidean, 2, f32>>
// CHECK-NEXT:    %[[H:.*]] = func.call @Enc__jet2_wrt0(%[[J]]) : (!jet.jet<2, !geo.point<euclidean, 2, f32>>) -> !jet.jet<2, !geo.point<euclidean, 3, f32>>
// CHECK-NEXT:    %[[H2:.*]] = func.call @Enc__jet2_wrt0(%[[J]])
// CHECK-NEXT:    %[[S:.*]] = jet.apply "geo.scale"(%[[H2]]) params {factor = 2.000000e+00 : f64}
// CHECK-NEXT:    %[[M:.*]] = jet.apply "geo.mul"(%[[H]], %[[S]])
// CHECK-NEXT:    func.return %[[M]] : !jet.jet<2, !geo.point<euclidean, 3, f32>>

// A jvp is an order-1 jet and its two coefficients; the other input stays a plain point.
// CHECK-LABEL: func.func @jb(
// CHECK-NEXT:    %[[JY:.*]] = jet.seed %y, %v order 1
// CHECK-NEXT:    %[[A:.*]] = jet.apply "geo.mobius_add"(%x, %[[JY]]) : (!geo.point<poincare<1.0>, 2, f32>, !jet.jet<1, !geo.point<poincare<1.0>, 2, f32>>) -> !jet.jet<1, !geo.point<poincare<1.0>, 2, f32>>
// CHECK-NEXT:    %[[C0:.*]] = jet.coeff %[[A]] index 0
// CHECK-NEXT:    %[[C1:.*]] = jet.coeff %[[A]] index 1
// CHECK-NEXT:    func.return %[[C0]], %[[C1]]

// An output that does not depend on the input is a constant jet.
// CHECK-LABEL: func.func @dc(
// CHECK:         %[[SIN:.*]] = geo.sin %y
// CHECK-NEXT:    %[[LIFT:.*]] = jet.lift %[[SIN]] order 3 : !geo.point<euclidean, 3, f32> -> !jet.jet<3, !geo.point<euclidean, 3, f32>>
// CHECK-NEXT:    func.return %[[LIFT]]
