// The Taylor-mode code the emitters write (torch and JAX: the same lines):
// * sin and cos of one jet are one `taylor.sincos` call: the rules `taylor.sin` and
//   `taylor.cos` each run the coupled recurrence of both;
// * a plain point that several jet ops take along the same jet is lifted to a constant jet
//   once, into a local, and shared (a lift used once stays inline);
// * coords, the identity, is no call and no copy (`v3 = v2`): its operand's name is used.
// RUN: geomc %s --target=torch | filecheck %s
// RUN: geomc %s --target=jax | filecheck %s

manifold H = poincare(c = 1.0)
manifold T = torus(units = radians)

model Phase(theta: T[4]) -> R[1] {
  let s = sin(coords(theta))
  let c = cos(coords(theta))
  return coords(linear(s * c, 4 -> 1))
}

model Agg(x: H[4], y: H[4]) -> tangent H[4] {
  return logmap(x, y) + parallel_transport(y, x, logmap(y, x))
}

model Once(x: H[4], y: H[4]) -> R[1] {
  return dist(x, y)
}

derive d_phase = directional(Phase, order = 3)
derive j_agg = jvp(Agg)
derive j_once = jvp(Once)

// CHECK-LABEL: def Phase(params, theta):
// CHECK-NOT:       = theta
// CHECK:           s = {{(torch|jnp)}}.sin(theta)
// CHECK-NEXT:      c = {{(torch|jnp)}}.cos(theta)
// CHECK:           [[B:v[0-9]+]] = [[L:v[0-9]+]] + linear0_bias
// CHECK-NEXT:      return [[B]]

// CHECK-LABEL: def d_phase(params, theta, v):
// CHECK-NEXT:      """
// CHECK-NEXT:      [[S:v[0-9]+]] = taylor.seed(theta, v, 3)
// CHECK-NEXT:      s, c = taylor.sincos([[S]])
// CHECK-NEXT:      [[M:v[0-9]+]] = taylor.mul(s, c)
// CHECK-NOT:       taylor.coords
// CHECK:           [[O:v[0-9]+]] = taylor.layer([[M]], linear0_weight, linear0_bias)
// CHECK-NEXT:      return taylor.to_derivatives([[O]])

// CHECK-LABEL: def j_agg(params, x, y, v):
// CHECK-NEXT:      """
// CHECK-NEXT:      [[S:v[0-9]+]] = taylor.seed(x, v, 1)
// CHECK-NEXT:      y_lifted = taylor.lift(y, [[S]])
// CHECK-NEXT:      [[LXY:v[0-9]+]] = poincare_c1_jet.logmap([[S]], y_lifted)
// CHECK-NEXT:      [[LYX:v[0-9]+]] = poincare_c1_jet.logmap(y_lifted, [[S]])
// CHECK-NEXT:      [[PT:v[0-9]+]] = poincare_c1_jet.transp(y_lifted, [[S]], [[LYX]])
// CHECK-NEXT:      taylor.add([[LXY]], [[PT]])

// CHECK-LABEL: def j_once(params, x, y, v):
// CHECK-NEXT:      """
// CHECK-NEXT:      [[S:v[0-9]+]] = taylor.seed(x, v, 1)
// CHECK-NEXT:      poincare_c1_jet.dist([[S]], taylor.lift(y, [[S]]))
