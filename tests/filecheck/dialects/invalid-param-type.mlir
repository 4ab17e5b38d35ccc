// A parameter is a static rank-1/rank-2 float tensor, a point or a tangent.
// RUN: ( geomc %s --passes=; test $? -eq 1 ) 2>&1 | filecheck %s

// CHECK: error: {{.*}}: invalid IR: geo.param: result must be a static rank-1 or rank-2 float tensor, a !geo.point or a !geo.tangent, found tensor<?xf32>
// CHECK-NOT: Traceback

func.func @f() -> tensor<?xf32> {
  %0 = geo.param "f.b" init "zeros" : tensor<?xf32>
  func.return %0 : tensor<?xf32>
}
