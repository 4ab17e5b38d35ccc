// The policy of examples/rl_bandit.py: logits of 4 arms from a context in R^6.
model Policy(x: R[6]) -> R[4] {
  let h = tanh(linear(x, 6 -> 32))
  return linear(h, 32 -> 4)
}
