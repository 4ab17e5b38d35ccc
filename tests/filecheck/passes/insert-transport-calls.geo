// insert-transport through calls: a model's returned tangent is where its body puts it, in
// the caller's terms: at the origin (logmap0), or at the point passed for one of its
// arguments (logmap(a, b) is at the caller's operand for a). The pass carries it to where
// the caller uses it, and the default pipeline (jet-expand takes derivatives through the
// calls) verifies. tests/unit/test_program_checks.py compiles generator seed 14397, which
// the default pipeline rejected before this rule.
// RUN: geomc %s --passes=insert-transport | filecheck %s
// RUN: geomc %s --emit=ir > /dev/null
// A tangent made at an inner point of the callee stays unknown: no transport (after
// inline-models, run insert-transport again to carry it).
// RUN: geomc %s --passes=insert-transport,inline-models,insert-transport,cse,dce --emit=ir > /dev/null
// RUN: geomc %s --passes=insert-transport | filecheck %s --check-prefix=INNER

manifold B = poincare(c = 0.5)

model AtOrigin(v: B[3]) -> tangent B[3] {
  return 0.1 * logmap0(v)
}

model AtFirst(a: B[3], b: B[3]) -> tangent B[3] {
  return logmap(a, b)
}

model AtInner(a: B[3]) -> tangent B[3] {
  return logmap(mobius_add(a, a), a)
}

model Use(x: B[3], y: B[3]) -> B[3] {
  let h = mobius_tanh(x)
  let g = AtOrigin(y)
  let k = AtFirst(y, x)
  let s = expmap(h, g)
  return expmap(h, k)
}

model Inner(x: B[3]) -> B[3] {
  return expmap(x, AtInner(x))
}

derive d_use = directional(Use, order = 2)
derive j_use = jvp(Use)

// CHECK-LABEL: func.func @Use(
// CHECK-SAME:    %[[X:[a-z0-9_]+]]: {{.*}}, %[[Y:[a-z0-9_]+]]: {{.*}})
// CHECK:         %[[H:h]] = geo.expmap0
// CHECK:         %[[G:g]] = func.call @AtOrigin(%[[Y]])
// CHECK:         %[[K:k]] = func.call @AtFirst(%[[Y]], %[[X]])
// g is at the origin: carried to h.
// CHECK:         %[[O:.*]] = geo.origin %[[G]]
// CHECK-NEXT:    %[[G2:.*]] = geo.parallel_transport %[[O]], %[[H]], %[[G]]
// CHECK-NEXT:    geo.expmap %[[H]], %[[G2]]
// k is at y, the callee's first argument: carried from y to h.
// CHECK:         %[[K2:.*]] = geo.parallel_transport %[[Y]], %[[H]], %[[K]]
// CHECK-NEXT:    %[[R:.*]] = geo.expmap %[[H]], %[[K2]]
// CHECK-NEXT:    func.return %[[R]]

// INNER-LABEL: func.func @Inner(
// INNER-NOT:     geo.parallel_transport
// INNER:         func.return
