// Residual blocks on the Poincaré ball, and the holonomy of their loops.
//
// x + f(x) on a manifold is expmap(x, u) with u a tangent at x. Here f computes u in the
// tangent space at the origin (logmap0), so u lives at the origin, not at x: the
// insert-transport pass (first in the default pipeline) carries it to x with
// parallel_transport, and the IR dump shows where. Without the pass the build stops at
// the expmap, naming both points.
//
//   geomc examples/hyperbolic_residual.geo --emit=ir            # the inserted transports
//   geomc examples/hyperbolic_residual.geo --report=holonomy     # the loops' rotation angles
//   geomc examples/hyperbolic_residual.geo --plot=holonomy --model Block -o holonomy.png
manifold H = poincare(c = 1.0)

// One residual step; its result has its input's type, so it is a recurrent block: the
// holonomy report iterates it and measures how far its trajectory turns tangents.
model Block(x: H[4]) -> H[4] {
  let u = tanh(linear(logmap0(x), 4 -> 4))
  return expmap(x, scale(u, 0.5))
}

// Aggregation over neighbours: each neighbour's message is a tangent at the neighbour;
// insert-transport carries them to x before they are summed there.
model Aggregate(x: H[4], y: H[4], z: H[4]) -> tangent H[4] {
  let my = tanh(linear(logmap(y, x), 4 -> 4))
  let mz = tanh(linear(logmap(z, x), 4 -> 4))
  return logmap(x, y) + my + mz
}

// A tangent carried around the triangle x -> y -> z -> x: by Gauss-Bonnet it comes back
// rotated by the enclosed curvature (the identity on flat space).
model Loop(x: H[4], y: H[4], z: H[4]) -> tangent H[4] {
  return holonomy(logmap(x, y), x, y, z)
}
