// Rotations of the Poincaré ball (isometries fixing the origin) commute with
// Möbius addition and with Möbius activations, so this block is rotation
// equivariant: f(Rx, Ry) = R f(x, y).
manifold H = poincare(c = 0.5)

@equivariant(ball_rotation)
@lipschitz(4.0)
model GyroMidpoint(x: H[8], y: H[8]) -> H[8] {
  let s = mobius_add(x, y)
  return mobius_tanh(s)
}

// Rotating the inputs pairwise in R^2 leaves the squared distance unchanged.
@equivariant(so2)
model PairEnergy(p: R[2], q: R[2]) -> R[1] {
  let d = dist(p, q)
  return d * d
}
