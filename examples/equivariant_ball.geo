// Rotations of the Poincaré ball (isometries fixing the origin) commute with
// Möbius addition, Möbius scalar multiplication and the maps at the origin, so
// the point a fraction t of the way along the geodesic from x to y rotates with
// x and y: f(Rx, Ry, t) = R f(x, y, t). (A Möbius activation such as mobius_tanh
// would not: tanh acts coordinatewise; verify-contracts rejects it.)
manifold H = poincare(c = 0.5)

@equivariant(ball_rotation)
model Geodesic(x: H[8], y: H[8], t: R[1]) -> H[8] {
  let minus_x = expmap0(-logmap0(x))
  return mobius_add(x, mobius_scalar(t, mobius_add(minus_x, y)))
}

// Rotating the inputs pairwise in R^2 leaves the squared distance unchanged.
@equivariant(so2)
model PairEnergy(p: R[2], q: R[2]) -> R[1] {
  let d = dist(p, q)
  return d * d
}
