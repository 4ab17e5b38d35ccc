// One model per manifold, touching every geometric operation of the language.
manifold H = poincare(c = 1.0)
manifold L = lorentz(c = 1.0)
manifold S = sphere()
manifold T = torus(units = turns)

model BallOps(x: H[4], y: H[4], r: R[1]) -> H[4] {
  let v = logmap(x, y)
  let w = parallel_transport(x, y, v)
  let z = expmap(y, w)
  let z = mobius_add(z, mobius_scalar(r, x))
  let z = mobius_matvec(z, 4 -> 4)
  return proj(mobius_relu(z))
}

model LorentzOps(x: L[5]) -> R[1] {
  let v = logmap0(x)
  let y = expmap0(sigmoid(linear(v, 5 -> 5)))
  return dist(x, y)
}

model SphereOps(x: S[3], v: tangent S[3]) -> S[3] {
  let y = expmap(x, v)
  return proj(y)
}

model TorusOps(a: T[2], b: T[2]) -> R[2] {
  let d = coords(logmap(a, b))
  return pow(d, 2.0) + sqrt(softplus(d)) - log(exp(d)) / 2.0
}
