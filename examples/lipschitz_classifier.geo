// A classifier whose logits may move at most 4.0 per unit of input distance:
// the verify-contracts pass must prove the bound from the layers' weights.
@lipschitz(4.0)
model RobustClassifier(x: R[32]) -> R[10] {
  let h = relu(linear(x, 32 -> 64))
  let h = relu(linear(h, 64 -> 64))
  return linear(h, 64 -> 10)
}

// Monotone in the dose: more dose never lowers the predicted response. The
// layers the dose flows through keep nonnegative weights (through training too),
// and softplus never decreases, so verify-contracts proves it by sign analysis.
@monotone(dose, increasing)
model DoseResponse(dose: R[1], covariates: R[4]) -> R[1] {
  let h = softplus(linear(dose, 1 -> 8, nonnegative = true) + linear(covariates, 4 -> 8))
  return linear(h, 8 -> 1, nonnegative = true)
}
