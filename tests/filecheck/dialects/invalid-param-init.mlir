// geo.param accepts the known initialisers only.
// RUN: ( geomc %s --passes=; test $? -eq 1 ) 2>&1 | filecheck %s

// CHECK: error: {{.*}}: invalid IR: geo.param: unknown init 'ones' for 'f.scale' (expected one of glorot_uniform, zeros, uniform_small, normal)
// CHECK-NOT: Traceback

func.func @f() -> tensor<4xf32> {
  %0 = geo.param "f.scale" init "ones" : tensor<4xf32>
  func.return %0 : tensor<4xf32>
}
