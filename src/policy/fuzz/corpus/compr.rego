package p
x := [y | some y in input; y > 1]
