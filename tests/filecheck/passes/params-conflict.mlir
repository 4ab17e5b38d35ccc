// One parameter name with two meanings (type, init or weight transforms) is rejected when
// the IR is read: the prover and the backends would see different weights.
// RUN: ( geomc %s --passes=cse; test $? -eq 1 ) 2>&1 | filecheck %s

func.func @f() -> (tensor<4xf32>, tensor<8xf32>) {
  %a = geo.param "f.a" init "zeros" : tensor<4xf32>
  %a_wide = geo.param "f.a" init "normal" : tensor<8xf32>
  func.return %a, %a_wide : tensor<4xf32>, tensor<8xf32>
}

// CHECK: error: {{.*}}params-conflict.mlir: invalid IR: geo.param: parameter 'f.a' is declared twice with different meanings: tensor<4xf32> init 'zeros' without weight_transforms and tensor<8xf32> init 'normal' without weight_transforms
