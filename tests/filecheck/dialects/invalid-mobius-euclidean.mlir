// Möbius operations exist only on the Poincaré ball.
// RUN: ( geomc %s --passes=; test $? -eq 1 ) 2>&1 | filecheck %s

// CHECK: error: {{.*}}: invalid IR: geo.mobius_add: x must be a !geo.point on poincare, found !geo.point<euclidean, 4, f32>
// CHECK-NOT: Traceback

func.func @f(%x: !geo.point<euclidean, 4, f32>, %y: !geo.point<euclidean, 4, f32>) -> !geo.point<euclidean, 4, f32> {
  %0 = geo.mobius_add %x, %y : !geo.point<euclidean, 4, f32>, !geo.point<euclidean, 4, f32> -> !geo.point<euclidean, 4, f32>
  func.return %0 : !geo.point<euclidean, 4, f32>
}
