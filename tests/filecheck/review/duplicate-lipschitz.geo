// RUN: ( geomc %s; test $? -eq 1 ) 2>&1 | filecheck %s
// Two @lipschitz contracts on one model: the language gives them no meaning; an error at
// the second, with a note at the first.
@lipschitz(4.0)
@lipschitz(2.0, radius = 1.0)
model U(x: R[2]) -> R[2] {
  return tanh(x)
}

// CHECK: duplicate-lipschitz.geo:5:2: error: model U has two @lipschitz contracts (the first at {{.*}}duplicate-lipschitz.geo:4:2); give one: @lipschitz(L) or @lipschitz(L, radius = R)
// CHECK-NEXT:     5 | @lipschitz(2.0, radius = 1.0)
// CHECK-NEXT:       |  ^~~~~~~~~
// CHECK-NEXT: duplicate-lipschitz.geo:4:2: note: the first @lipschitz of model U
// CHECK-NOT: Traceback
