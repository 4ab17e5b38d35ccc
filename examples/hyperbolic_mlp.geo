// A two-layer hyperbolic MLP on the Poincaré ball (Ganea et al., 2018): Möbius linear layers
// with learned hyperbolic biases, a Möbius tanh between them; 6-Lipschitz within distance 0.5 of 0.
manifold H = poincare(c = 1.0)
@lipschitz(6.0, radius = 0.5)
model HyperbolicMLP(x: H[16]) -> H[8] {
  let h = mobius_linear(x, 16 -> 32)
  let h = mobius_tanh(h)
  return mobius_linear(h, 32 -> 8)
}

// Distance of the embedding from a learned prototype, as a logit.
model PrototypeScore(x: H[16], prototype: H[8]) -> R[1] {
  let z = HyperbolicMLP(x)
  return -1.0 * dist(z, prototype)
}
