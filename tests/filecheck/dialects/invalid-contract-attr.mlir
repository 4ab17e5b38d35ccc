// The contracts attribute must hold #contract attributes.
// RUN: ( geomc %s --passes=; test $? -eq 1 ) 2>&1 | filecheck %s

func.func @f() attributes {contracts = 3} {
  func.return
}

// CHECK: invalid IR: func.func: 'contracts' must be an array of #contract attributes, found 3 : i64
