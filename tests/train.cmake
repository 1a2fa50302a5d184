# Training (shared/train*.c, cli/cmd_train.c).
# Unit tests: loss decreases, exact resume from a checkpoint, clipping, LR schedule, SVF.
t2_add_c_test(test_train unit)
target_link_libraries(test_train PRIVATE PkgConfig::LAPACKE)

# One forward + backward dumped for the PyTorch gradient check.
add_executable(train_dump ${CMAKE_CURRENT_SOURCE_DIR}/train_dump.c)
target_link_libraries(train_dump PRIVATE t2 PkgConfig::LAPACKE)
target_include_directories(train_dump PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})

# Every weight gradient and every SVF p gradient vs. torch autograd (float64).
t2_add_script_test(grad_check parity /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/grad_check.py)

# `t2 train` end to end: CSV / SVG / GGUF outputs, resume == uninterrupted.
t2_add_script_test(train_cli unit bash ${CMAKE_CURRENT_SOURCE_DIR}/train_cli.sh)

# Data parallelism: mpirun -np 2 and -np 1 give the same loss curve (1e-4 relative).
t2_add_script_test(train_mpi mpi bash ${CMAKE_CURRENT_SOURCE_DIR}/train_mpi.sh)

# `t2 svf`: REINFORCE experts and the LoRA baseline end to end; 2 ranks == 1 rank.
t2_add_script_test(svf_train mpi bash ${CMAKE_CURRENT_SOURCE_DIR}/svf_train.sh)
