// insert-transport: where tangents at different base points meet, the pass carries one
// of them over by geo.parallel_transport, right before the op that combines them. A vector
// op keeps its first operand's base point; expmap(z, v) needs v at z; the origin of a
// logmap0 tangent becomes a geo.origin value.
// RUN: geomc %s --passes=insert-transport | filecheck %s
// Idempotent: a second run changes nothing.
// RUN: geomc %s --passes=insert-transport > %t.once.mlir
// RUN: geomc %t.once.mlir --passes=insert-transport > %t.twice.mlir
// RUN: diff %t.once.mlir %t.twice.mlir
// RUN: geomc %s --passes=insert-transport,insert-transport | filecheck %s
// Tangents that already share a point are left alone.
// RUN: geomc %s --passes=insert-transport | filecheck %s --check-prefix=SAME

manifold H = poincare(c = 1.0)

model Mix(x: H[2], y: H[2], z: H[2]) -> H[2] {
  let u = logmap(x, y)
  let w = logmap(y, z)
  let s = u + w
  let o = logmap0(z) + s
  return expmap(z, o)
}

model Same(x: H[2], y: H[2], z: H[2]) -> tangent H[2] {
  let a = logmap(x, y)
  let b = logmap(x, z)
  let c = parallel_transport(y, x, logmap(y, z))
  return 0.5 * (a - b) + tanh(c)
}

// CHECK-LABEL: func.func @Mix(
// CHECK-SAME:    %[[X:[a-z0-9_]+]]: {{.*}}, %[[Y:[a-z0-9_]+]]: {{.*}}, %[[Z:[a-z0-9_]+]]: {{.*}})
// CHECK-NEXT:  %[[U:.*]] = geo.logmap %[[X]], %[[Y]]
// CHECK-NEXT:  %[[W:.*]] = geo.logmap %[[Y]], %[[Z]]
// The rhs of u + w is at y: carried to x, u's point.
// CHECK-NEXT:  %[[W2:.*]] = geo.parallel_transport %[[Y]], %[[X]], %[[W]]
// CHECK-NEXT:  %[[S:.*]] = geo.add %[[U]], %[[W2]]
// logmap0(z) is at the origin: s (at x) is carried there.
// CHECK-NEXT:  %[[L0:.*]] = geo.logmap0 %[[Z]]
// CHECK-NEXT:  %[[O1:.*]] = geo.origin %[[S]]
// CHECK-NEXT:  %[[S2:.*]] = geo.parallel_transport %[[X]], %[[O1]], %[[S]]
// CHECK-NEXT:  %[[O:.*]] = geo.add %[[L0]], %[[S2]]
// expmap at z needs its tangent at z.
// CHECK-NEXT:  %[[O2:.*]] = geo.origin %[[O]]
// CHECK-NEXT:  %[[O3:.*]] = geo.parallel_transport %[[O2]], %[[Z]], %[[O]]
// CHECK-NEXT:  %[[R:.*]] = geo.expmap %[[Z]], %[[O3]]
// CHECK-NEXT:  func.return %[[R]]

// SAME-LABEL: func.func @Same(
// SAME-COUNT-1: geo.parallel_transport
// SAME-NOT:     geo.parallel_transport
// SAME-NOT:     geo.origin
// SAME:         func.return
