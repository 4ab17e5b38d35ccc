// A model on trained hierarchy embeddings: it takes the Poincaré point of a WordNet
// mammal (geomir.representations, dimension 5, curvature 1) and scores it, e.g. "is it a
// carnivore?". docs/representations.md ("Feeding a geomir model") feeds it trained points;
// the model's input type must be the embedding's space and dimension (check_model checks).
manifold H = poincare(c = 1.0)

model Scorer(x: H[5]) -> R[1] {
  let h = mobius_tanh(mobius_linear(x, 5 -> 16))
  return coords(linear(logmap0(h), 16 -> 1))
}
