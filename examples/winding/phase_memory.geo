// Phase memory: a trajectory of four phases (angles on the torus T^4, e.g. four coupled
// oscillators sampled over time) is stored as a path. How many times each phase went
// around is a topological address: integer-valued, unchanged by any perturbation of the
// samples below the certified margin. Paths are inputs of shape (..., T, 4), any T >= 1.
// Targets: torch and jax (the winding ops are not on triton).

manifold T = torus(units = radians)

// The winding vector: net turns of each phase, integers as floats.
model Winding(p: path T[4]) -> R[4] {
  return winding(p)
}

// How far each sample may move (in the max norm) before the winding vector can change.
model Margin(p: path T[4]) -> R[1] {
  return winding_margin(p)
}

// Where the trajectory ended, as a point on the torus.
model Address(p: path T[4]) -> T[4] {
  return endpoint(p)
}

// A readout of the unwrapped (lifted) displacement together with the final phases.
model Readout(p: path T[4, f64]) -> R[1, f64] {
  let d = unwrap(p)
  let e = coords(logmap0(endpoint(p)))
  return linear(tanh(d / 6.283185307179586) + sin(e), 4 -> 1)
}
