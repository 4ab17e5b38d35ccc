// cse and geo.param: a parameter is identified by its name. Ops naming the same
// parameter (as inline-models leaves them) merge; different names never do.
// RUN: geomc %s --passes=cse | filecheck %s

func.func @f() -> (tensor<4xf32>, tensor<4xf32>, tensor<4xf32>) {
  %a = geo.param "f.a" init "zeros" : tensor<4xf32>
  %b = geo.param "f.b" init "zeros" : tensor<4xf32>
  %a_again = geo.param "f.a" init "zeros" : tensor<4xf32>
  func.return %a, %b, %a_again : tensor<4xf32>, tensor<4xf32>, tensor<4xf32>
}

// CHECK-LABEL: func.func @f()
// CHECK-NEXT:  %[[A:.*]] = geo.param "f.a" init "zeros" : tensor<4xf32>
// CHECK-NEXT:  %[[B:.*]] = geo.param "f.b" init "zeros" : tensor<4xf32>
// CHECK-NEXT:  func.return %[[A]], %[[B]], %[[A]] :
