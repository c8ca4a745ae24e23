"""Policy programs (정책발행): paying a program's money out to its recipients."""
