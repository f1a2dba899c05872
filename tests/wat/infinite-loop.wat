;; A hostile command: spins forever. `--timeout` must stop it.
(component
  (core module $m
    (func (export "run") (result i32)
      (loop $spin (br $spin))
      (i32.const 0)))
  (core instance $i (instantiate $m))
  (func $run (result (result)) (canon lift (core func $i "run")))
  (instance $cli-run (export "run" (func $run)))
  (export "wasi:cli/run@0.2.0" (instance $cli-run)))
