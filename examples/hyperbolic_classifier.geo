// A small classifier on the Poincaré disk, trained by examples/train_hyperbolic.py
// with a Riemannian optimizer: the Möbius layers' biases are points on the ball.
manifold H = poincare(c = 1.0)

model Encoder(x: H[2]) -> H[16] {
  let h = mobius_linear(x, 2 -> 16)
  return mobius_tanh(h)
}

// Class logits from the encoder's tangent space at the origin.
model Classifier(x: H[2]) -> R[4] {
  let z = Encoder(x)
  return coords(linear(logmap0(z), 16 -> 4))
}
