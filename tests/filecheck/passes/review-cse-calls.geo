// A model that calls another model twice on the same input runs it once: cse merges the
// two func.call ops (every .geo model is pure), in the IR and so in the emitted code.
// RUN: geomc %s --passes=cse,dce | filecheck %s
// RUN: geomc %s --target=torch | filecheck %s --check-prefix=TORCH
// RUN: geomc %s --target=jax | filecheck %s --check-prefix=TORCH

model F(x: R[4]) -> R[4] {
  return tanh(linear(x, 4 -> 4))
}

model G(x: R[4], y: R[4]) -> R[4] {
  let a = F(x)
  let b = F(x)
  return a + b + F(y)
}

// CHECK-LABEL: func.func @G(
// CHECK-SAME:    %[[X:.*]]: !geo.point<euclidean, 4, f32>, %[[Y:.*]]: !geo.point<euclidean, 4, f32>)
// CHECK-NEXT:  %[[A:.*]] = func.call @F(%[[X]])
// CHECK-NEXT:  %[[S:.*]] = geo.add %[[A]], %[[A]]
// CHECK-NEXT:  %[[C:.*]] = func.call @F(%[[Y]])
// CHECK-NEXT:  %[[R:.*]] = geo.add %[[S]], %[[C]]
// CHECK-NEXT:  func.return %[[R]]

// TORCH-LABEL: def G(params, x, y):
// TORCH:           a = F(params, x)
// TORCH-NEXT:      [[S:v[0-9]+]] = a + a
// TORCH-NEXT:      [[C:v[0-9]+]] = F(params, y)
// TORCH-NEXT:      [[R:v[0-9]+]] = [[S]] + [[C]]
// TORCH-NEXT:      return [[R]]
