;; A command that exits 0 when its environment holds at least one variable, 1 when it is empty.
;; `run` passes only the --env variables, so exit 0 means the one given got through.
(component
  (import "wasi:cli/environment@0.2.0" (instance $env
    (export "get-environment" (func (result (list (tuple string string)))))))
  (core module $mem
    (memory (export "memory") 1)
    (global $next (mut i32) (i32.const 1024))
    ;; A bump allocator: align up, hand out, never free.
    (func (export "realloc") (param i32 i32 i32 i32) (result i32)
      (local $p i32)
      (local.set $p
        (i32.and
          (i32.add (global.get $next) (i32.sub (local.get 2) (i32.const 1)))
          (i32.sub (i32.const 0) (local.get 2))))
      (global.set $next (i32.add (local.get $p) (local.get 3)))
      (local.get $p)))
  (core instance $m (instantiate $mem))
  (core func $get-environment
    (canon lower (func $env "get-environment")
      (memory (core memory $m "memory")) (realloc (core func $m "realloc"))))
  (core module $main
    (import "mem" "memory" (memory 1))
    (import "env" "get-environment" (func $get (param i32)))
    (func (export "run") (result i32)
      ;; The list lands at 16: its pointer at 16, its length at 20. 0 is ok, 1 is err.
      (call $get (i32.const 16))
      (i32.eqz (i32.load (i32.const 20)))))
  (core instance $i (instantiate $main
    (with "mem" (instance $m))
    (with "env" (instance (export "get-environment" (func $get-environment))))))
  (func $run (result (result)) (canon lift (core func $i "run")))
  (instance $cli-run (export "run" (func $run)))
  (export "wasi:cli/run@0.2.0" (instance $cli-run)))
