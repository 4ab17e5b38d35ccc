// A physics-informed network u(x) for a 2-D Poisson problem  -Δu = f.
// The residual needs the Laplacian of u; the jets issue lowers these requests
// into one Taylor-mode propagation.
model U(x: R[2]) -> R[1] {
  let h = tanh(linear(x, 2 -> 64))
  let h = tanh(linear(h, 64 -> 64))
  let h = tanh(linear(h, 64 -> 64))
  return linear(h, 64 -> 1)
}

derive lap_u = laplacian(U)
derive du    = jvp(U)
derive d4_u  = directional(U, order = 4)
derive grad_u = vjp(U)
derive hess_u = hvp(U)
