;; A hostile command: grows its memory 1 MiB at a time until something stops it.
;; `--max-memory` must stop it.
(component
  (core module $m
    (memory 1)
    (func (export "run") (result i32)
      (loop $grow
        (br_if $grow (i32.ne (memory.grow (i32.const 16)) (i32.const -1))))
      (i32.const 0)))
  (core instance $i (instantiate $m))
  (func $run (result (result)) (canon lift (core func $i "run")))
  (instance $cli-run (export "run" (func $run)))
  (export "wasi:cli/run@0.2.0" (instance $cli-run)))
