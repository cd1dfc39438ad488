from services.flow.bootstrap import MIGRATIONS, SERVICE, build
from shared.runner import main

main(SERVICE, build, MIGRATIONS)
