// Every Triton launch-site kind with every activation the kernels cover: dense layers,
// jets of order 2 and 8, the collapsed Laplacian and Poincaré layers (tests/triton).
manifold H = poincare(c = 0.5)

model Smooth(x: R[3]) -> R[1] {
  let h = sigmoid(linear(x, 3 -> 24))
  let h = sin(linear(h, 24 -> 24))
  let h = softplus(linear(h, 24 -> 16))
  let h = cos(linear(h, 16 -> 16))
  let h = exp(linear(h, 16 -> 8, bias = false))
  return linear(h, 8 -> 1)
}

model Kinked(x: R[4]) -> R[2] {
  let h = relu(linear(x, 4 -> 16))
  return tanh(linear(h, 16 -> 2))
}

model Ball(x: H[6]) -> H[3] {
  let h = mobius_linear(x, 6 -> 12)
  let h = mobius_sigmoid(h)
  let h = mobius_linear(h, 12 -> 12)
  let h = mobius_relu(h)
  return mobius_linear(h, 12 -> 3)
}

derive d2_smooth = directional(Smooth, order = 2)
derive d8_smooth = directional(Smooth, order = 8)
derive lap_smooth = laplacian(Smooth)
derive d4_kinked = directional(Kinked, order = 4)
derive lap_kinked = laplacian(Kinked)
