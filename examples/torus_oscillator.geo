// Phases of four coupled oscillators live on the flat torus T^4.
manifold T = torus(units = radians)

// Features from the phases by their sine and cosine (continuous on the torus).
model PhaseReadout(theta: T[4]) -> R[1] {
  let s = sin(coords(theta))
  let c = cos(coords(theta))
  let h = tanh(linear(s, 4 -> 16) + linear(c, 4 -> 16))
  return linear(h, 16 -> 1)
}

// A kernel of the geodesic distance: invariant when both points move together.
@equivariant(torus_translation)
model TorusKernel(a: T[4], b: T[4]) -> R[1] {
  let d = dist(a, b)
  return exp(-0.5 * d * d)
}

// One step of phase dynamics: a learned, damped step towards a target phase.
model PhaseStep(theta: T[4], target: T[4]) -> T[4] {
  let v = logmap(theta, target)
  let v = 0.1 * tanh(linear(v, 4 -> 4))
  return proj(expmap(theta, v))
}
